namespace Fer.Core.Data;

/// <summary>Bad input data: names the file, the 1-based line (0 when the problem is the whole file) and the problem.</summary>
public sealed class FerDataException(string file, long line, string problem)
    : Exception(line > 0 ? $"{file}:{line}: {problem}" : $"{file}: {problem}")
{
    public string File { get; } = file;
    public long Line { get; } = line;
    public string Problem { get; } = problem;
}
