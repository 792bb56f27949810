"""Safety specifications from 1-bit danger signals (EPO-Safe): environments, oracle, prompts, loop.

The artifact here is a natural-language behavioural specification σ. The
feedback that matters is a danger bit per step that is kept apart from the
reward, and the quantity we care about, the hidden performance R*, never
reaches the model. Module map:

* :mod:`.env`, :mod:`.grid`: the environment contract and grid helpers;
* :mod:`.gridworlds`: five AI Safety Gridworlds re-implemented from their rules;
* :mod:`.scenarios`: five text analogs with the same R / R* / danger-bit contract;
* :mod:`.envs`: the catalog (``make_env``);
* :mod:`.episode`, :mod:`.noise`, :mod:`.private`: rollouts, the noisy oracle, the R* wrapper;
* :mod:`.plan`: reply -> actions; :mod:`.methods`, :mod:`.feedback`, :mod:`.prompts`: what each method shows;
* :mod:`.metrics`: per-round metrics; :mod:`.loop`: the experiential loop against a Synthesizer.
* :mod:`.task`: the ``safety/<env>`` synthloop tasks (the loop through the engine, the held-out gate);
* :mod:`.report`: curves, specification diffs, noise heat map; :mod:`.sweep`: env × method × rate grids.
"""

from synthloop.tasks.safety.env import SafetyEnv
from synthloop.tasks.safety.envs import ANALOG_OF, GRIDWORLD_IDS, TEXT_IDS, env_ids, make_env
from synthloop.tasks.safety.episode import EpisodeResult, StepRecord, run_episode
from synthloop.tasks.safety.feedback import build_feedback
from synthloop.tasks.safety.methods import METHODS, Method, get_method
from synthloop.tasks.safety.metrics import RoundMetrics, normalised_performance, round_metrics
from synthloop.tasks.safety.noise import NoiseModel
from synthloop.tasks.safety.plan import parse_plan
from synthloop.tasks.safety.private import Private, PrivateValueLeak

__all__ = [
    "ANALOG_OF", "GRIDWORLD_IDS", "METHODS", "TEXT_IDS", "EpisodeResult", "Method", "NoiseModel", "Private",
    "PrivateValueLeak", "RoundMetrics", "SafetyEnv", "StepRecord", "build_feedback", "env_ids", "get_method",
    "make_env", "normalised_performance", "parse_plan", "round_metrics", "run_episode",
]
