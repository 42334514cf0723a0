"""Audit log: who did what to which record, written in the same transaction as the change."""
