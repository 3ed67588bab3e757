"""Resource estimators: FLOPs/MACs, parameters and latency."""
from .analytic import analytic_cost_of, register_analytic_cost
from .channel_costs import channel_costs
from .counter import CountBucket, OpCounter, count_call
from .latency import LatencyLUT
from .resource_estimator import ResourceEstimator, time_function

__all__ = [
    'ResourceEstimator', 'LatencyLUT', 'OpCounter', 'CountBucket',
    'count_call', 'time_function', 'analytic_cost_of',
    'register_analytic_cost', 'channel_costs'
]
