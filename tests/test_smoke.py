from que import Job, Que


class Greet(Job):
    def run(self, name):
        pass


def test_enqueue_is_seen(que_jobs):
    Greet.enqueue("bob")
    que_jobs.assert_enqueued(Greet, args=["bob"])
    assert que_jobs.work().succeeded == 1
    assert len(que_jobs) == 0


def test_previous_test_rolled_back(que_jobs):
    assert len(que_jobs) == 0
    assert Que.db_version() == 7
