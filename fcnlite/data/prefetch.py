"""Prepare the next samples in a background thread while the current one is being trained on.

Reading a JPEG, decoding a PNG and augmenting take milliseconds of CPU that the
training step does not need; a thread can do them meanwhile. (The GIL is no
obstacle: Pillow's decoding and most NumPy work release it, and on a GPU the
main thread mostly waits for the device.)

    with Prefetcher(lambda k: load_and_augment(order[k]), count=len(order), depth=4) as samples:
        for sample in samples:
            train_on(sample)

A daemon thread calls produce(0), produce(1), ... produce(count - 1) (or on and on
with count=None: the training loop, which cannot know how many samples --skip-bad
will drop, stops asking when it is done) in that order and puts the results in a
queue of at most `depth` items, so it runs ahead by `depth` samples and no further.
The consumer receives them in the same order. If produce(k) raises, the consumer
gets that same exception (with the worker's traceback) when it asks for item k.
close() stops the thread; the `with` block calls it also when the consumer leaves
early (break, an error, Ctrl-C).
"""
import itertools
import queue
import threading

# How long a blocked put/get waits before looking again whether close() was called.
POLL_SECONDS = 0.1


def _work(produce, count, results, stop):
    """The thread's loop. It holds no reference to the Prefetcher, so an abandoned one can be collected."""
    for index in (range(count) if count is not None else itertools.count()):
        if stop.is_set():
            return
        try:
            item = (True, produce(index))
        except BaseException as error:   # hand everything to the consumer; a thread has no one else to tell
            item = (False, error)
        while not stop.is_set():
            try:
                results.put(item, timeout=POLL_SECONDS)
                break
            except queue.Full:
                continue
        if not item[0]:
            return


class Prefetcher:
    """Iterate over produce(0) ... produce(count - 1) (endlessly with count=None), computed `depth`
    items ahead in a thread."""

    def __init__(self, produce, count, depth=4):
        if depth < 1:
            raise ValueError(f"Prefetcher depth must be at least 1, got {depth}")
        self.count = count
        self.delivered = 0
        self._results = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_work, args=(produce, count, self._results, self._stop),
                                        name="fcnlite-prefetch", daemon=True)
        self._thread.start()

    def __len__(self):
        if self.count is None:
            raise TypeError("an endless Prefetcher (count=None) has no length")
        return self.count

    def __iter__(self):
        return self

    def __next__(self):
        if (self.count is not None and self.delivered >= self.count) or self._stop.is_set():
            raise StopIteration
        while True:
            try:
                succeeded, value = self._results.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                if self._stop.is_set():
                    raise StopIteration from None
        self.delivered += 1
        if not succeeded:
            self.close()       # the worker has stopped; nothing more will come
            raise value
        return value

    def close(self, timeout=None):
        """Stop the worker and wait for it (it finishes the produce call it is in)."""
        self._stop.set()
        while True:            # drop what is queued: frees memory and unblocks a waiting put at once
            try:
                self._results.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __del__(self):
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
