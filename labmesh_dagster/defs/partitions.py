"""Every experiment is a dynamic partition, added by the ELN sensor when it first sees the experiment."""

import dagster as dg

experiments_partitions = dg.DynamicPartitionsDefinition(name="experiments")
