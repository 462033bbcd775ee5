"""Fleets: aia's own detection and benchmarks on every node of a Ray cluster.

    connect.py   ray is optional: require_ray(), connect(address), local_cluster(n)
    nodes.py     the cluster's alive nodes (Node), --nodes/--select, nodes sharing a machine
    remote.py    what runs on a node: node_detect(), node_bench() (aia's own code there)
    run.py       the driver: fleet_detect(), fleet_bench() (placement, faults, Ctrl-C)

Nothing outside this package imports Ray, and this package imports it only
inside functions: `aia --help` and `aia detect` never load it. Ray is the
extra ``pip install "aialliance-cli[fleet]"``.
"""
