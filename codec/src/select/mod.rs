//! Page-selection strategies: which pages each iteration sends, and when to stop.
