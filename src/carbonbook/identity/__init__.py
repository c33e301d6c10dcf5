"""People and organisations who use carbonbook: users, roles, credentials, partner platforms."""
