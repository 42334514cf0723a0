"""Tags: tag groups (exclusive or multi-valued), tags and which member carries which tag."""
