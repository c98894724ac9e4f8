//! Admission at the cap, the pause after an accept error, the next deadline a shard sleeps
//! until, and lent output: the lifecycle with a fake clock, the test playing the driver.

use super::tests::{GET_INDEX, at, core_with, downloading, kept_alive, run, step};
use super::*;

#[test]
fn at_the_cap_the_longest_idle_keepalive_connection_is_evicted_and_a_busy_one_never() {
    let mut core = core_with(4);
    let silent = core.accept((), None).unwrap();
    let older = kept_alive(&mut core, 1_000);
    let busy = downloading(&mut core, 1_500);
    let younger = kept_alive(&mut core, 2_000);
    assert!(matches!(core.accept((), None), Err(())));
    assert!(core.wants_accepts(0), "at the cap with idle connections, accepting goes on");
    // The keep-alive connection idle the longest goes first. The silent new one is older
    // but is no keep-alive connection: it has its request timeout, and its request may
    // be in the socket unread (evicting it would reset a client that did ask).
    assert_eq!(core.admit(1), Admission::Evict(older));
    // The room its close makes is for the one waiting: no second eviction for it.
    assert_eq!(core.admit(1), Admission::Wait);
    assert_eq!(step(&mut core, older, Event::Resume), Next::Close);
    core.release(older);
    assert_eq!(core.admit(1), Admission::Take);
    let newcomer = core.accept((), None).unwrap();
    assert_eq!(core.admit(2), Admission::Evict(younger));
    // New, mid-request or mid-response: none is evicted.
    assert_eq!(step(&mut core, silent, Event::Received(b"GET / HTTP/1.1\r\n")), Next::Receive);
    assert_eq!(core.admit(2), Admission::Wait);
    assert!(!core.wants_accepts(0), "full, and nothing to evict: leave them in the backlog");
    assert_eq!(step(&mut core, busy, Event::Resume), Next::Send);
    // Once its response is whole (a megabyte: a turn's budget), the busy one is kept
    // alive, and evictable.
    assert_eq!(run(&mut core, busy, Event::Resume).1, Next::Yield);
    at(&mut core, 2_001);
    assert_eq!(run(&mut core, busy, Event::Resume).1, Next::Receive);
    assert_eq!(core.admit(2), Admission::Evict(busy));
    assert_eq!(step(&mut core, newcomer, Event::Resume), Next::Receive);
}

#[test]
fn at_the_cap_a_few_accepted_connections_wait_for_room_and_no_more() {
    let mut core = core_with(2);
    kept_alive(&mut core, 0);
    kept_alive(&mut core, 0);
    assert!(core.wants_accepts(EVICT_AHEAD - 1));
    assert!(!core.wants_accepts(EVICT_AHEAD), "past EVICT_AHEAD they wait in the backlog");
    let mut core = core_with(3);
    core.accept((), None).unwrap();
    assert!(core.wants_accepts(1) && !core.wants_accepts(2), "below the cap: only as many as there is room for");
}

#[test]
fn an_accept_error_pauses_accepting_and_says_until_when() {
    let mut core = core_with(10);
    at(&mut core, 5_000);
    assert_eq!(core.next_deadline(), None, "nothing pending");
    core.accept_failed();
    assert!(!core.wants_accepts(0));
    assert_eq!(core.next_deadline(), Some(5_000 + ACCEPT_RETRY));
    at(&mut core, 5_000 + ACCEPT_RETRY);
    assert!(core.wants_accepts(0));
    assert_eq!(core.next_deadline(), None);
}

#[test]
fn the_next_deadline_is_the_earliest_timer_and_an_idle_core_has_none() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    // A new connection waits for its first request for the request timeout (5 s here).
    assert_eq!(core.next_deadline(), Some(5_000));
    at(&mut core, 1_000);
    assert_eq!(run(&mut core, t, Event::Received(GET_INDEX)).1, Next::Receive);
    // Kept alive from 1 s for 7 s; the entry filed at 5 s stands until then (refiled
    // lazily), so the shard wakes at 5 s once, finds it stale, and sleeps till 8 s.
    assert_eq!(core.next_deadline(), Some(5_000));
    assert!(at(&mut core, 5_000).is_empty());
    assert_eq!(core.next_deadline(), Some(8_000));
    assert_eq!(at(&mut core, 8_000), [t]);
    assert_eq!(step(&mut core, t, Event::Resume), Next::Close);
    core.release(t);
    assert_eq!(core.next_deadline(), None, "nothing held, nothing to wake for");
}

/// Output lent to the kernel outlives everything but the send's outcome: releasing the
/// connection before it is a broken contract that panics (the bytes leak, never freed),
/// and only a quiesced ring (nothing in flight any more) ends every loan at once.
#[test]
fn lent_output_is_released_only_after_its_send_or_a_quiesce() {
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    let s = core.step(t, Event::Received(GET_INDEX)).unwrap();
    let Action::Send(offer) = s.action else { panic!("{:?}", s.action) };
    offer.lend();
    assert_eq!(step(&mut core, t, Event::Failed), Next::Close, "the socket failed, the send is still in flight");
    let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.release(t)));
    assert!(released.is_err(), "released while its output was lent");
    let mut core = core_with(10);
    let t = core.accept((), None).unwrap();
    let s = core.step(t, Event::Received(GET_INDEX)).unwrap();
    let Action::Send(offer) = s.action else { panic!("{:?}", s.action) };
    offer.lend();
    core.close_all();
    core.quiesced();
    assert!(core.release(t).is_some());
}
