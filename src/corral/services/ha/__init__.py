"""High availability: HA VMs come back on other hosts when their host dies, never twice.

* :mod:`.definitions`  which VMs may be HA (disks every other host reaches), turning HA on
  and off, and keeping each HA VM's definition saved while its host answers
* :mod:`.fencing`      proving a silent host is off before anything restarts (its power
  driver, or an administrator's ``confirm-down``)
* :mod:`.restart`      where each HA VM of a fenced host goes, and bringing it up there
* :mod:`.monitor`      the loop that runs once in the cluster (a lease) and drives hosts
  through ok → suspect → fencing → fenced → recovering → (back) ok
"""
