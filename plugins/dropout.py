"""``dropout``: randomly silence units while training, so the network cannot lean on any one."""

from autoreg import Choice, Float, Technique, hookimpl


class Dropout(Technique):
    name = "dropout"
    stage = "training"
    families = ("mlp",)
    description = ("Dropout: during training each hidden unit is zeroed with probability rate "
                   "(and each input feature with input_rate); nothing changes at prediction.")
    space = {"rate": Float(0.0, 0.5), "input_rate": Choice((0.0, 0.1, 0.2))}

    def mlp_configure(self, config, ctx):
        config.dropout_hidden = self.rate
        config.dropout_input = self.input_rate


@hookimpl
def register_techniques(register):
    register(Dropout)
