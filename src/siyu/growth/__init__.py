"""Growth: channel codes (活码), referrals, group buying and their risk control."""
