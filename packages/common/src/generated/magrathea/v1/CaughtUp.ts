// Original file: proto/magrathea/v1/relay_service.proto


export interface CaughtUp {
}

export interface CaughtUp__Output {
}
