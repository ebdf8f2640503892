using System.Net;

namespace Livegraft.Host.Repository;

/// <summary>
/// Where a host reads a repository from: a directory (a path or <c>file://</c> URL, e.g. a mounted
/// read-only disk or NFS) or an <c>http://</c>/<c>https://</c> base URL served by any static web
/// server. Files are read whole into memory with a size limit; nothing is written here, so a
/// partial transfer can never be mistaken for a file (the caller verifies, then writes atomically).
/// Plain HTTP needs only libc; <c>https://</c> makes .NET load OpenSSL (libssl3) at run time.
/// </summary>
public sealed class RepositorySource : IDisposable
{
    private readonly HttpClient? _http;
    private readonly string _base;

    private RepositorySource(string location, HttpClient? http, string @base)
    {
        Location = location;
        _http = http;
        _base = @base;
    }

    /// <summary>What the operator gave.</summary>
    public string Location { get; }

    /// <summary>True for HTTP(S).</summary>
    public bool IsRemote => _http is not null;

    /// <summary>Opens a path, <c>file://</c>, <c>http://</c> or <c>https://</c> location.</summary>
    public static RepositorySource Open(string location, TimeSpan? timeout = null)
    {
        if (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            // No proxy lookup beyond the standard variables, no cookies, no redirects to other schemes.
            var handler = new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 5, UseCookies = false, AutomaticDecompression = DecompressionMethods.None };
            var http = new HttpClient(handler) { Timeout = timeout ?? TimeSpan.FromSeconds(60) };
            http.DefaultRequestHeaders.UserAgent.ParseAdd("livegraft/" + typeof(RepositorySource).Assembly.GetName().Version?.ToString(3));
            return new RepositorySource(location, http, location.TrimEnd('/') + "/");
        }
        var path = location.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? Uri.UnescapeDataString(location["file://".Length..]) : location;
        if (!Directory.Exists(path))
            throw new LivegraftException(ExitCode.HostFailure, FleetErrors.FetchFailed, "the repository directory does not exist or is not readable", path);
        return new RepositorySource(location, null, Path.GetFullPath(path));
    }

    /// <summary>Where <paramref name="relative"/> is, for messages.</summary>
    public string Describe(string relative) => IsRemote ? _base + relative : Path.Combine(_base, relative);

    /// <summary>Reads a file of at most <paramref name="maxBytes"/>; null when it does not exist (404).
    /// Other failures are LG0600 (exit 3).</summary>
    public byte[]? TryRead(string relative, long maxBytes)
    {
        var where = Describe(relative);
        if (_http is null)
        {
            try
            {
                var info = new FileInfo(where);
                if (!info.Exists)
                    return null;
                if (info.Length > maxBytes)
                    throw TooLarge(where, maxBytes);
                return File.ReadAllBytes(where);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new LivegraftException(ExitCode.HostFailure, FleetErrors.FetchFailed, "cannot read: " + e.Message, where);
            }
        }
        try
        {
            using var response = _http.Send(new HttpRequestMessage(HttpMethod.Get, where), HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode == HttpStatusCode.NotFound)
                return null;
            if (!response.IsSuccessStatusCode)
                throw new LivegraftException(ExitCode.HostFailure, FleetErrors.FetchFailed, $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", where);
            if (response.Content.Headers.ContentLength > maxBytes)
                throw TooLarge(where, maxBytes);
            using var stream = response.Content.ReadAsStream();
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (buffer.Length + n > maxBytes)
                    throw TooLarge(where, maxBytes);
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or InvalidOperationException)
        {
            throw new LivegraftException(ExitCode.HostFailure, FleetErrors.FetchFailed, "cannot fetch: " + e.Message, where);
        }
    }

    /// <summary>Like <see cref="TryRead"/>, but a missing file is LG0600 too.</summary>
    public byte[] Read(string relative, long maxBytes) =>
        TryRead(relative, maxBytes) ?? throw new LivegraftException(ExitCode.HostFailure, FleetErrors.FetchFailed, "not found in the repository", Describe(relative));

    private static LivegraftException TooLarge(string where, long max) =>
        new(ExitCode.VerificationFailed, FleetErrors.HashMismatch, $"larger than the {max} bytes expected; not read further", where);

    /// <inheritdoc/>
    public void Dispose() => _http?.Dispose();
}
