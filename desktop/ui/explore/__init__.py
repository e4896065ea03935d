"""The Explore tab's widgets: top patches per unit, feature visualisation, conv shapes."""
