using System.Runtime.CompilerServices;

// The batch producer and checkpoint store are internal; their tests check them directly.
[assembly: InternalsVisibleTo("Fer.Core.Tests")]
