import Foundation
import Testing

@testable import Gateway

@Suite("What the registry browser says of a manifest")
struct ImageSummaryTests {
    func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test("an index with its platforms, an image, and artifacts by artifactType or by a non-image config")
    func kinds() throws {
        let index = try object(#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},{"digest":"sha256:b","platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#)
        #expect(ImageSummary.kind(of: index) == "index")
        #expect(ImageSummary.platforms(of: index) == ["linux/amd64", "linux/arm64/v8"])
        let image = try object(#"{"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":100},"layers":[{"size":1000},{"size":234}]}"#)
        #expect(ImageSummary.kind(of: image) == "image")
        #expect(ImageSummary.imageSize(image) == 1334)
        let helm = try object(#"{"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","size":10},"layers":[]}"#)
        #expect(ImageSummary.kind(of: helm) == "artifact (application/vnd.cncf.helm.config.v1+json)")
        let signature = try object(#"{"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2},"layers":[]}"#)
        #expect(ImageSummary.kind(of: signature) == "artifact (application/vnd.dev.cosign.artifact.sig.v1+json)")
    }

    @Test("sizes in decimal units, as docker prints them")
    func sizes() {
        #expect(ImageSummary.format(999) == "999 B")
        #expect(ImageSummary.format(1334) == "1.3 kB")
        #expect(ImageSummary.format(52_400_000) == "52.4 MB")
        #expect(ImageSummary.format(nil) == "unknown")
    }
}
