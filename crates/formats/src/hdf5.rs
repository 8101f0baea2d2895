//! (hdf5 reader: see the module owner's work)
