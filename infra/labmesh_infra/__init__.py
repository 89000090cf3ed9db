"""labmesh's AWS infrastructure as a CDK app: one stack, built from one construct per concern."""
