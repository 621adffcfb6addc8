"""The ways to run synthtasks (Dockerfile, docker-compose.yml, deploy/k8s/) render, are
valid, are hardened, and agree with the services they run.

- Every kustomize overlay (and each with the CPU-autoscaling fallback component) renders
  and each document validates with kubernetes-validate --strict. KEDA's custom
  resources have no schema there: their required fields are checked by hand.
- Environment variable names in docker-compose.yml and in the Kubernetes containers are
  settings of the service that the container runs (derived from its pydantic-settings
  class), required settings are all given, ports and probes match the settings'
  defaults, and every command is a console script of pyproject.toml.

Rendering needs kustomize v5 (`kustomize` or `kubectl kustomize`); install it with
`bash deploy/k8s/install-kubectl.sh`. Without it the rendering tests skip, except when
the CI environment variable is set, where they fail.
"""
