"""`labmesh sync`: the watched-folder agent that moves instrument output into the landing zone."""
