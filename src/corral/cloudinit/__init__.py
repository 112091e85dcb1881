"""cloud-init for Corral's VMs: the NoCloud seed and what goes into it."""
