"""Small fake servers on loopback that speak the third-party APIs kpibot calls."""
