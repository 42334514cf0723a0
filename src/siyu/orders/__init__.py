"""Orders: paid and refunded order lines from POS, mini-program and marketplaces."""
