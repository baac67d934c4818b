namespace Fer.Core.Photos;

/// <summary>An input of `fer predict` that cannot be used: one line naming the file and the problem.</summary>
public sealed class PhotoInputException(string path, string problem, Exception? inner = null)
    : Exception($"{path}: {problem}", inner)
{
    public string Path { get; } = path;
    public string Problem { get; } = problem;
}
