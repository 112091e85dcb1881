"""cloud-init for Corral's VMs: the request, the NoCloud seed and what goes into it, and its
checks."""
