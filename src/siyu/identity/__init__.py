"""Identity (OneID): members, the identity values that point at them, phone normalisation and merges."""
