"""The run's state on disk: the run directory's layout (the only place its file
names are spelled), the journal, the runner lock, recovery from the job files,
the cloud store and the poller that reads the jobs' status files."""
