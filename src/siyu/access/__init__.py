"""Access: console users, roles, password hashing and login sessions."""
