"""Every built-in technique passes the conformance suite that third-party plugins run."""

import sys
from pathlib import Path

from autoreg.testing import TechniqueTests

pytest_plugins = ["pytester"]


class TestL1(TechniqueTests):
    technique = "l1"


class TestL2(TechniqueTests):
    technique = "l2"


class TestElasticNet(TechniqueTests):
    technique = "elasticnet"


class TestGroupLasso(TechniqueTests):
    technique = "group_lasso"


class TestDropout(TechniqueTests):
    technique = "dropout"


class TestPruning(TechniqueTests):
    technique = "pruning"


class TestQuantization(TechniqueTests):
    technique = "quantization"


# The example third-party plugin runs the same suite, loaded by module name from its folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "autoreg-l0"))


class TestExampleL0(TechniqueTests):
    technique = "l0"
    plugins = ("autoreg_l0",)


def test_the_suite_catches_a_nondeterministic_technique(pytester):
    """The suite is not a formality: a technique that draws unseeded noise fails it."""
    pytester.makepyfile(noisy_plugin='''
import numpy as np
from autoreg import Float, Technique, hookimpl

class Noisy(Technique):
    name = "noisy"
    stage = "compression"
    families = ("linear",)
    tasks = ("regression",)
    description = "Adds unseeded noise to the weights."
    space = {"scale": Float(0.01, 0.1)}

    def compress(self, weights, ctx):
        return [w + self.scale * np.random.default_rng().normal(size=w.shape) for w in weights]

@hookimpl
def register_techniques(register):
    register(Noisy)
''')
    pytester.makepyfile(test_noisy='''
from autoreg.testing import TechniqueTests

class TestNoisy(TechniqueTests):
    technique = "noisy"
    plugins = ("noisy_plugin",)
''')
    pytester.syspathinsert()
    outcome = pytester.runpytest("-q", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=5, failed=1)
    outcome.stdout.fnmatch_lines(["*test_deterministic*"])
