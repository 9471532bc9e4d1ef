import pytest

from intake.lock import AlreadyRunningError, InstanceLock


def test_second_instance_is_refused_with_a_clear_message(tmp_path):
    with InstanceLock(tmp_path / "q.db.lock", "q.db"):
        with pytest.raises(AlreadyRunningError) as err:
            with InstanceLock(tmp_path / "q.db.lock", "q.db"):
                pass
    assert "already running on q.db" in str(err.value)
    # Released on exit: a new instance may start.
    with InstanceLock(tmp_path / "q.db.lock", "q.db"):
        pass
