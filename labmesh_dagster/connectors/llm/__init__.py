"""Language models that answer from evidence labmesh retrieved: Amazon Bedrock's Converse."""
