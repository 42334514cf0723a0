"""Privacy (PIPL): export and erasure of one person's data across both stores."""
