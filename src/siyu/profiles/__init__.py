"""Profiles: computed traits per member (RFM, lifecycle, favourite category/store, KOC score)."""
