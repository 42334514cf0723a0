"""Channels: adapters that deliver messages (sandbox, WeCom, SMS, email, webhook)."""
