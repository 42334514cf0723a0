"""Identity (OneID): members, the identity values pointing at them, phones and merges."""
