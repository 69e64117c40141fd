"""What a job's progress bar shows (api/console/jobs.py `progress`)."""

from api.console.jobs import progress


def test_a_batch_moves_from_queued_to_running_to_its_outcome():
    assert progress({"kind": "batch", "status": "queued"})["percent"] == 0
    assert progress({"kind": "batch", "status": "running"})["percent"] == 50
    done = progress({"kind": "batch", "status": "partially_failed",
                     "result": {"total": 3, "succeeded": 2, "failed": 1}})
    assert (done["done"], done["percent"], done["succeeded"], done["failed"]) == (True, 100, 2, 1)


def test_a_command_and_a_batch_given_up_without_a_result():
    assert progress({"kind": "command", "status": "failed"})["failed"] == 1
    assert progress({"kind": "command", "status": "succeeded", "result": {"on_hand_after": 4}})[
        "succeeded"] == 1
    gave_up = progress({"kind": "batch", "status": "failed"})
    assert gave_up["done"] and gave_up["failed"] is None and gave_up["total"] is None
