"""Who the caller is to the policy engine, authorization of each call, and its audit trail;
versioned policy sets."""
