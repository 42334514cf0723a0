"""Loyalty and offers: coupons and redemptions, the points ledger, tiers and stamp cards."""
