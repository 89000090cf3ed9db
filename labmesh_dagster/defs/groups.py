"""The one asset group every labmesh asset belongs to.

One group, not one per kind of asset: Dagster's global lineage draws group
boxes only when the groups vary, and opens them collapsed. With every asset in
one group, the first thing a person sees there is the flow itself, expanded:
experiment -> raw_dataset -> processed_dataset -> final_dataset.
"""

LAB_GROUP = "lab"
