"""Built-in laws, registered through the same ``register_laws`` hook a third-party plugin uses."""

from capcast import hookimpl
from capcast.laws.auto import AutoLaw
from capcast.laws.baselines import LinearLaw, LogitLinearLaw
from capcast.laws.ladder import LadderLaw
from capcast.laws.loss_error import LossErrorLaw
from capcast.laws.passuntil import PassUntilLaw
from capcast.laws.power import PowerLaw
from capcast.laws.sigmoid import SigmoidLaw

# The laws ``auto`` chooses among, in order of preference on ties.
AUTO_CANDIDATES = (SigmoidLaw(), LadderLaw(), LossErrorLaw())


@hookimpl
def register_laws(register):
    for law in (*AUTO_CANDIDATES, LinearLaw(), LogitLinearLaw(), AutoLaw(candidates=AUTO_CANDIDATES)):
        register(law)
    # PassUntil (Hu et al.): for pass rates measured by `capcast sample`; on N, or on compute.
    register(PassUntilLaw())
    register(PassUntilLaw(axis="compute", name="passuntil_compute"))
    # For losses (bpb_gold, logprob_gold, loss, ppl): E + A * C^-alpha; `auto` on a loss metric uses it.
    register(PowerLaw())
