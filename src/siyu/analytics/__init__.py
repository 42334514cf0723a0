"""Analytics: lifecycle, RFM, retention and repurchase reports over the warehouse."""
