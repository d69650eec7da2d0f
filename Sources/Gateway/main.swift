import Foundation
print("portcullis")
