//! A faithful fake of the Tripletex API v2.
