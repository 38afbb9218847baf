package resource

// conversationRules are Twilio's rules that only conversations have.
var conversationRules = &KindRules{
	Explained:      timerDrivenState,
	Finished:       closedByOwnTimer,
	Frozen:         closedIsFinal,
	SplitCreate:    createThenClose,
	CompleteUpdate: timersTravelWithState,
	Volatile:       []string{FieldState},
	// Deleting a conversation deletes its participants (documented) and
	// webhooks (INFERRED); a closed one refuses their deletes (50377).
	DeleteTakesChildren: true,
}

// timerDrivenState drops a state difference that the spec's own timers
// explain: Twilio moves a conversation to inactive and then closed when its
// timers fire, and that is what the spec asked for — fighting it would
// reopen inactive conversations and, worse, replace closed ones.
func timerDrivenState(want, have Values, differing []string) []string {
	desired, observed := want[FieldState], have[FieldState]
	_, inactiveTimer := want[FieldTimersInactive]
	_, closedTimer := want[FieldTimersClosed]
	explained := (observed == StateClosed && desired != StateClosed && closedTimer) ||
		(observed == StateInactive && desired == StateActive && inactiveTimer)
	if !explained {
		return differing
	}
	out := differing[:0:0]
	for _, f := range differing {
		if f != FieldState {
			out = append(out, f)
		}
	}
	return out
}

// closedByOwnTimer reports a conversation that is closed in Twilio while its
// spec does not ask for closed but sets timers.closed: its timer fired. It
// is finished, as the spec asked; replacing it for a later edit would give
// it a new SID and lose its history (remove timers.closed to have it
// replaced).
func closedByOwnTimer(want, have Values) bool {
	_, closedTimer := want[FieldTimersClosed]
	return closedTimer && have[FieldState] == StateClosed && want[FieldState] != StateClosed
}

// closedIsFinal: Twilio refuses every update of a closed conversation.
func closedIsFinal(have Values) string {
	if have[FieldState] == StateClosed {
		return "it is closed in Twilio, and a closed conversation can never be changed again"
	}
	return ""
}

// createThenClose: Twilio refuses to create a closed conversation (50384),
// so it is created active and then closed. Timers sent without State are
// refused (50382); a new conversation is active anyway.
func createThenClose(v Values) (create, after Values) {
	create = v.Clone()
	if create == nil {
		create = Values{}
	}
	if create[FieldState] == StateClosed {
		create[FieldState] = StateActive
		after = Values{FieldState: StateClosed}
	}
	timersTravelWithState(create, nil, nil)
	return create, after
}

// timersTravelWithState: Twilio refuses timers sent without State (50382):
// send the state the spec wants, or keep the one it has.
func timersTravelWithState(send, want, have Values) {
	_, hasInactive := send[FieldTimersInactive]
	_, hasClosed := send[FieldTimersClosed]
	if !(hasInactive || hasClosed) || send[FieldState] != "" {
		return
	}
	st := want[FieldState]
	if st == "" {
		st = have[FieldState]
	}
	if st == "" {
		st = StateActive
	}
	send[FieldState] = st
}
