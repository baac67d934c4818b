namespace Fer.Core.Photos;

/// <summary>One face found and classified: a row of faces.csv.</summary>
public sealed record FaceRow(string File, int? Frame, double? Seconds, FaceBox Box, int Label, string LabelName, float Confidence, float[] Probabilities);

/// <summary>An image (or a video's sampled frame, for videos see <see cref="VideoResult"/>) and what was found in it.</summary>
public sealed record ImageResult(string File, int Width, int Height, int Faces, string? Annotated, IReadOnlyList<string> Explanations);

public sealed record VideoResult(string File, int FramesRead, int SampledFrames, double Fps, bool FpsGuessed, int Width, int Height, int Faces,
    int FramesWithFaces, string? Annotated, string? Timeline, string? TimelineCsv);

/// <summary>Where the time went, in seconds (decode includes reading the file; annotate includes writing outputs).</summary>
public sealed class PredictTimings
{
    public double Decode { get; set; }
    public double Detect { get; set; }
    public double Crop { get; set; }
    public double Classify { get; set; }
    public double Explain { get; set; }
    public double Annotate { get; set; }
    public double Total { get; set; }
}

public sealed class PhotoPredictionResult
{
    public List<FaceRow> Faces { get; } = [];
    public List<ImageResult> Images { get; } = [];
    public List<VideoResult> Videos { get; } = [];
    public List<PhotoInputException> Errors { get; } = [];
    public PredictTimings Timings { get; } = new();
    public int ForwardPasses { get; set; }
    public int LargestBatch { get; set; }
}
