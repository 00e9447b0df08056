"""Test support per area (fixtures and launchers); test modules import what they use."""
