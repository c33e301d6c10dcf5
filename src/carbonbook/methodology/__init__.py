"""Versioned methodologies: factor data and pure quantification."""
