"""Staff: regions, stores and the guides (导购/BA) who own customers."""
