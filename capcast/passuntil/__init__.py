"""PassUntil (Hu et al.): estimators (:mod:`.estimators`), a pure sampler that imports no store or
harness (:mod:`.sampler`), the store's rounds (:mod:`.rounds`) and the runner that drives the
harness and the store (:mod:`.runner`)."""
