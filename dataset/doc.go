// Package dataset turns videos on disk into the "path label" lists zoo's
// readers take: a class-per-folder tree (Tree), Kinetics' annotation CSVs
// against a downloaded folder (Kinetics), and a decode check of every video
// of a list (Check) with the reader training uses (package video).
//
// host/cmd/data is its one importer; it imports video and the standard
// library only, so the host stays free of gorgonia.
package dataset
