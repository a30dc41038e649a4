"""Generated run names: ``nimble-falcon`` for flow runs, ``fetch_data-3fa`` for task runs."""

from __future__ import annotations

import random

__all__ = ["generate_flow_run_name", "generate_task_run_name"]

ADJECTIVES = (
    "agile amber ancient bold brave bright brisk calm clever cosmic crimson curious "
    "daring dazzling eager electric emerald fearless fierce gentle glossy golden graceful "
    "hidden humble icy jolly keen lively lucky mellow mighty misty nimble noble patient "
    "polished proud quick quiet radiant rapid resilient robust rustic scarlet serene "
    "sharp shiny silent silver sleek smart snowy solid spirited steady stellar stoic "
    "sturdy sunny swift tactful tidy tireless tranquil turquoise vivid wandering warm "
    "wise witty zealous"
).split()

ANIMALS = (
    "albatross alligator alpaca antelope badger bat bear beaver bison bobcat buffalo "
    "caribou cheetah cobra condor cormorant coyote crane crow deer dingo dolphin dove "
    "eagle eel egret elk falcon ferret finch fox gazelle gecko gibbon goose gopher "
    "hare hawk hedgehog heron hippo horse hound ibex ibis jackal jaguar kestrel "
    "kingfisher koala lemur leopard lion llama lynx macaw mamba marmot marten mink "
    "mole moose narwhal newt ocelot octopus orca oriole osprey otter owl panda panther "
    "parrot pelican penguin pheasant puffin puma python quail rabbit raccoon raven "
    "reindeer robin salmon seal shark sparrow squid stag starling stork swan tapir "
    "tiger toad toucan trout turtle viper walrus weasel whale wolf wombat wren yak zebra"
).split()

_random = random.Random()


def generate_flow_run_name() -> str:
    """An ``adjective-animal`` name, e.g. ``nimble-falcon``."""
    return f"{_random.choice(ADJECTIVES)}-{_random.choice(ANIMALS)}"


def generate_task_run_name(task_name: str) -> str:
    """``{task name}-{three hex digits}``, e.g. ``fetch_data-3fa``."""
    return f"{task_name}-{_random.getrandbits(12):03x}"
