"""Delivery: policy (consent, caps, quiet hours), the outbox and the channels behind it."""
